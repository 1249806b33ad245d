; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. Nesting (Module.Class.method) is derived by the chunker.
; Modules are kind "namespace": kind "module" is the header chunk of a file.

(module
  name: [(constant) (scope_resolution)] @name.definition.namespace) @definition.namespace

(class
  name: [(constant) (scope_resolution)] @name.definition.class) @definition.class

(method
  name: (_) @name.definition.method) @definition.method

(singleton_method
  name: (_) @name.definition.method) @definition.method
