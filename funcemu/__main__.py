from funcemu.cli import main

raise SystemExit(main())
