"""The interactive terminal UI: `mcode.repl.app.run_repl` is what plain `mcode` runs.

Nothing is imported here, so that shell commands can use `mcode.repl.listing` without loading the
REPL's prompt toolkit.
"""
