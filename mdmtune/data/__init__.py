"""What goes in and comes out: eval sets, generations made elsewhere, archives, JSON and numbers for people."""
