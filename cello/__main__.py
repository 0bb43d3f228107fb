from cello.cli import main

raise SystemExit(main())
