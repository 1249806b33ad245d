; Definitions in the tree-sitter tags convention: @definition.<kind> wraps the node,
; @name.definition.<kind> is its name. When several patterns match one node the first
; pattern in this file wins, so the specific class forms come before the general one.

(class_declaration
  "interface"
  (type_identifier) @name.definition.interface) @definition.interface

(class_declaration
  "enum"
  (type_identifier) @name.definition.enum) @definition.enum

(class_declaration
  (type_identifier) @name.definition.class) @definition.class

(object_declaration
  (type_identifier) @name.definition.class) @definition.class

(function_declaration
  (simple_identifier) @name.definition.function) @definition.function
