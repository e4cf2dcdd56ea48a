"""naap-db's domain and ops tools: the plugin catalogue, the access plan, and
the commands that check and change a live database. Plain Python: this package
never imports pulumi, so hooks and ops tools start fast and run anywhere."""
