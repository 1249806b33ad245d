; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name.

(function_definition
  name: (word) @name.definition.function) @definition.function
