"""Run folders, one module per problem family, on the contract of :mod:`.folder`."""
