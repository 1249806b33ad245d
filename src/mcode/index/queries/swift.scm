; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. Nesting (Type.method) is derived by the chunker.

(class_declaration
  declaration_kind: ["class" "actor"]
  name: (type_identifier) @name.definition.class) @definition.class

(class_declaration
  declaration_kind: "struct"
  name: (type_identifier) @name.definition.struct) @definition.struct

(class_declaration
  declaration_kind: "enum"
  name: (type_identifier) @name.definition.enum) @definition.enum

(class_declaration
  declaration_kind: "extension"
  name: (user_type (type_identifier) @name.definition.impl)) @definition.impl

(protocol_declaration
  name: (type_identifier) @name.definition.interface) @definition.interface

(function_declaration
  name: (simple_identifier) @name.definition.function) @definition.function

(protocol_function_declaration
  name: (simple_identifier) @name.definition.method) @definition.method

(init_declaration
  "init" @name.definition.method) @definition.method

(typealias_declaration
  name: (type_identifier) @name.definition.type) @definition.type
