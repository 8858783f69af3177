"""Use cases. Services own the transactions; they take their collaborators in constructors."""
