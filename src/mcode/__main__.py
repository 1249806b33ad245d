from mcode.cli import main

main()
