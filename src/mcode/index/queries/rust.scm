; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. Methods inside impl/trait become Type.method.
; `mod` is kind "namespace": kind "module" is the header chunk of a file.

(struct_item
  name: (type_identifier) @name.definition.struct) @definition.struct

(union_item
  name: (type_identifier) @name.definition.struct) @definition.struct

(enum_item
  name: (type_identifier) @name.definition.enum) @definition.enum

(trait_item
  name: (type_identifier) @name.definition.trait) @definition.trait

(impl_item
  type: [
    (type_identifier) @name.definition.impl
    (generic_type type: (type_identifier) @name.definition.impl)
    (scoped_type_identifier name: (type_identifier) @name.definition.impl)
    (generic_type type: (scoped_type_identifier name: (type_identifier) @name.definition.impl))
  ]) @definition.impl

(mod_item
  name: (identifier) @name.definition.namespace
  body: (declaration_list)) @definition.namespace

(function_item
  name: (identifier) @name.definition.function) @definition.function

(function_signature_item
  name: (identifier) @name.definition.function) @definition.function

(type_item
  name: (type_identifier) @name.definition.type) @definition.type

(const_item
  name: (identifier) @name.definition.constant) @definition.constant

(static_item
  name: (identifier) @name.definition.constant) @definition.constant

(macro_definition
  name: (identifier) @name.definition.macro) @definition.macro
