"""GraphQL over HTTP: the ASGI app (``http``), what stands before every request
(``guard``), a request's parameters (``params``), the limits on a query's shape
(``limits``), and the server that runs it (``server``: ``fraiseql-nb serve``)."""
