"""One controller per area; each calls geodesk.services and writes geodesk.app.state.AppState."""
