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

; Top-level compound statements can hold definitions (`if sys.platform == "win32": def ...`,
; `try: ... except ImportError: def ...`). The definitions query runs shallow, so it is run again
; inside each of these @scope captures.
(module (if_statement) @scope)
(module (try_statement) @scope)
(module (with_statement) @scope)
