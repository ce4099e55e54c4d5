import sys

from idglow.cli import main

sys.exit(main())
