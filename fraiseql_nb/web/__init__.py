"""GraphQL over HTTP: the ASGI app (``http``), its guards (``limits``), and the
server that runs it (``serve``)."""
