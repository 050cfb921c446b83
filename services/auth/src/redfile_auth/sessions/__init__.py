"""Sessions: login (with its failure limits), refresh-token rotation, logout and password change."""
