from smsbridge.cli import main

main()
