"""The data planes, behind one protocol (``contract``) and registered in one place
(``registry``), and the router that picks one for each query among their offers
(``router``, a pure decision). A plane takes query IR and returns a Result; the planes
are where queries meet PostgreSQL, ADBC and Ray."""
