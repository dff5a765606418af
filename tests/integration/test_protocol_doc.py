"""protocol/PROTOCOL.md keeps the tables the server derives from its operation table,
and names every error code the server can send."""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.environ.get("REFINE_SERVER", os.path.join(ROOT, "build", "refine-server"))
DOC = os.path.join(ROOT, "protocol", "PROTOCOL.md")


class ProtocolDocTest(unittest.TestCase):
    def test_generated_tables_match_the_operation_table(self):
        generated = subprocess.run([SERVER, "--print-protocol"], check=True,
                                   capture_output=True, text=True).stdout
        doc = open(DOC, encoding="utf-8").read()
        m = re.search(r"<!-- BEGIN GENERATED: operations -->.*?<!-- END GENERATED: operations -->\n",
                      doc, re.S)
        self.assertIsNotNone(m, "PROTOCOL.md lost its generated block")
        self.assertEqual(m.group(0), generated,
                         "PROTOCOL.md is out of date: paste `refine-server --print-protocol` "
                         "between the GENERATED markers")

    def test_every_error_code_is_documented(self):
        src = open(os.path.join(ROOT, "protocol", "errors.c"), encoding="utf-8").read()
        codes = set(re.findall(r'return "([a-z_]+)";', src))
        self.assertGreaterEqual(len(codes), 11)
        doc = open(DOC, encoding="utf-8").read()
        for code in codes:
            self.assertIn("| `%s` |" % code, doc, code)

    def test_help_names_every_flag_and_variable(self):
        out = subprocess.run([SERVER, "--help"], check=True, capture_output=True,
                             text=True).stdout
        readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
        for flag in re.findall(r"^\s+(--[a-z-]+)", out, re.M):
            self.assertIn(flag, readme, "README.md does not mention " + flag)
        for var in re.findall(r"\((REFINE_[A-Z_]+)", out):
            self.assertIn(var, readme, "README.md does not mention " + var)


if __name__ == "__main__":
    unittest.main(verbosity=2)
