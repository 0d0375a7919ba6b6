from anonfaces.cli import main

main(prog_name="anonfaces")
