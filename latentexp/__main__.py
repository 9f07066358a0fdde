from latentexp.cli import main

main()
