; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. Nesting (Class.method) is derived by the chunker.
; A decorated definition is captured whole (decorators included); the chunker then ignores the
; match of the bare definition inside it.

(decorated_definition
  definition: (class_definition
    name: (identifier) @name.definition.class)) @definition.class

(decorated_definition
  definition: (function_definition
    name: (identifier) @name.definition.function)) @definition.function

(class_definition
  name: (identifier) @name.definition.class) @definition.class

(function_definition
  name: (identifier) @name.definition.function) @definition.function
