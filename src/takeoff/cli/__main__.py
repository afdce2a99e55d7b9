from takeoff.cli import app

app()
