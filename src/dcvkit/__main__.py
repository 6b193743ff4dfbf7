from dcvkit.cli.main import entry

entry()
