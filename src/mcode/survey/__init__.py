"""What a repository says about itself: languages, layout, manifests and their commands, commit style
(`scan`), and the instruction files it keeps for coding agents (`instructions`).

Read by `mcode init` to write the `project` block, and by the system prompt for the instruction
files; pure analysis of files, never a write.
"""
