from coursegate.cli import main

main()
