"""The operator's side: the admin role, views across tenants, dead letters, scheduled clean-up."""
