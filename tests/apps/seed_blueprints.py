"""The seed's Blueprint examples (v0.3.0 release notes), unchanged, in one file."""

from cello import App, Blueprint

users_bp = Blueprint("/users")


@users_bp.get("/")
def list_users(request):
    return {"users": []}


@users_bp.get("/{id}")
def get_user(request):
    return {"id": request.params["id"]}


app = App()
app.register_blueprint(users_bp)
# Routes: GET /users/, GET /users/{id}

# Nested blueprints
api = Blueprint("/api")
v1 = Blueprint("/v1")
v1.register_blueprint(users_bp)
api.register_blueprint(v1)
app.register_blueprint(api)
# Routes: GET /api/v1/users/, GET /api/v1/users/{id}
