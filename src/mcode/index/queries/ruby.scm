; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. Nesting (Module.Class.method) is derived by the chunker.

(module
  name: [(constant) (scope_resolution)] @name.definition.module) @definition.module

(class
  name: [(constant) (scope_resolution)] @name.definition.class) @definition.class

(method
  name: (_) @name.definition.method) @definition.method

(singleton_method
  name: (_) @name.definition.method) @definition.method
