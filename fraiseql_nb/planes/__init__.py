"""The data planes: I/O only. Each takes query IR and returns a Result."""
