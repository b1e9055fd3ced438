from kavka.cli.main import main

raise SystemExit(main())
