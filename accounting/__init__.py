"""Everything per accounting system: one package each (client, errors, mapping, settings, adapter,
emulator), plus the system-neutral engine and the registry the worker, config, CLI, demo and tests iterate."""
