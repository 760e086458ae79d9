"""Parent/child feature hierarchies: trees, generation, and the firing constraints they impose."""
