"""Users, roles, service tokens, password hashing and JWTs."""
