
import os

# Before any cpw module loads (conftest imports the definitions): the run config's defaults
# are the settings read at load time, and no test may see the developer's cpw.yaml or CPW_*
# environment. The autouse fixture in conftest keeps each test isolated the same way.
for _var in [v for v in os.environ if v.startswith("CPW_") or v == "DAGSTER_HOME"]:
    del os.environ[_var]
os.environ["CPW_CONFIG"] = "/nonexistent/absent-cpw.yaml"
