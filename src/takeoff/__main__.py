from takeoff.cli import app

app(prog_name="takeoff")
