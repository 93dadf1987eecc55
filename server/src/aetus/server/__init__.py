"""AETUS server: gRPC services, embedded store, front door and demo fleet."""
