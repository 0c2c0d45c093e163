"""``python -m fraiseql_nb`` runs the command line."""

from fraiseql_nb.cli import main

raise SystemExit(main())
