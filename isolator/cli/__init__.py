"""The store's commands of ``ohp`` (install, list, show, ...), and text made safe for a terminal.

A public internal API: ``hostbridge``'s part of ``ohp`` (tools, call, agent, exec, doctor, demo)
adds its commands to this parser and prints through these helpers. Not for plugin hosts.
"""

from isolator.cli._cli import (
    COMMANDS,
    add_root,
    build_parser,
    chosen_command,
    emit,
    field,
    main,
    one_line,
    print_summary,
    run_doctor,
    store_of,
    to_json,
)
from isolator.cli._text import visible, write_raw

__all__ = ["COMMANDS", "add_root", "build_parser", "chosen_command", "emit", "field", "main",
           "one_line", "print_summary", "run_doctor", "store_of", "to_json", "visible", "write_raw"]
