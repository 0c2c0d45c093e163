"""GraphQL over HTTP: the ASGI app (``http``), what stands before every request
(``guard``), the limits on a query's shape (``limits``), and the server that runs it
(``server``: ``fraiseql-nb serve``)."""
