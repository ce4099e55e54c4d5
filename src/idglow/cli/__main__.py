import sys

from idglow.cli.main import main

sys.exit(main())
