"""Live updates: small pokes over Socket.IO after each commit, scaled out over Redis."""
