"""What a repository says about itself: languages, layout, manifests and their commands, commit style.

Read by `mcode init` to write the `project` block; pure analysis of files, never a write.
"""
