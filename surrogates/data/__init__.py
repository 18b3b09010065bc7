"""Shared dataset loaders: one module per problem family, plus the common schema in
:mod:`surrogates.data.common`."""
