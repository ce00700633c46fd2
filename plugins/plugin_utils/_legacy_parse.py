# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Reads the legacy ``MNAAS_backup_files_process.properties`` (bash, sourced by the legacy driver) without
running it: no shell is started and nothing in it is executed. ``_legacy.py`` maps what it sets to the
variables of the ``mnaas.backup.mnaas_backup`` role.


The bash understood is what such files hold:

- ``NAME=value`` (also after ``export``, ``readonly``, ``declare`` or ``typeset``), the value unquoted,
  in single quotes (literal) or in double quotes (``\\$``, ``\\```, ``\\"``, ``\\\\`` and
  backslash-newline are escapes, other backslashes are kept), or a mix of those; several
  assignments on one line separated by ``;``; a backslash-newline joins lines;
- ``declare -A NAME`` followed by ``NAME=( [key]=value ... )`` (over any number of lines, with
  comments between the elements) or by ``NAME[key]=value`` lines; ``declare -A NAME=( ... )``;
- comments: ``#`` at the start of a word up to the end of the line (inside quotes or inside a word,
  as in ``a#b``, ``#`` is data, as in bash);
- ``$name`` and ``${name}``, resolved from the assignments earlier in the file and from the
  variables the caller passes (the common MNAAS configuration: ``$dbname``, ``$MNAASConfPath``, ...).
  A later assignment in the file wins over the caller's value, as when bash sources the common
  configuration first. In the refresh statement ``$dbname.<table>`` is kept as written: the role
  reads it as the final table in the warehouse's database.

Everything else is a problem naming the file, the line and the key: command substitution
(``$(...)``, backticks), other expansions (``${name:-x}``, ``$1``, ``~``), unresolved variables,
unterminated quotes, parentheses or ``${``, duplicate assignments or array keys, an array assigned
without ``declare -A`` (bash would make an indexed array of it), any other command, CRLF line ends.
The first three only leave a value unknown (``Properties.unknown_values``): ``_legacy.py`` makes them
warnings in a key the new job does not use.
"""

from __future__ import annotations

import bisect
import re
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError

# In these values ``$dbname.<table>`` (or ``${dbname}.<table>``) is kept as written, not resolved: the role
# (mnaas.backup.hive_refresh) reads it as the final table, qualified with the warehouse database.
KEEP_DBNAME_TABLE = ('customer_files_record_count_tblname_refresh',)

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_OPTION = re.compile(r'-[A-Za-z]+')
_DECLARE_FLAGS = frozenset('Arxg')
_WORD_END = frozenset(' \t\n;')
_OPERATORS = frozenset('|&<>(')
_SPECIAL_PARAMETERS = frozenset('0123456789@*#?$!-')
_DBNAME = '\x00dbname\x00'  # a mark no file text holds (the text is decoded from a file: NUL is refused below)


class Problem(t.NamedTuple):
    """One thing the legacy file says that cannot be mapped; ``line`` 0 when it is not about a line."""

    path: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = '%s:%d' % (self.path, self.line) if self.line else self.path
        return '%s: %s: %s' % (where, self.key, self.message) if self.key else '%s: %s' % (where, self.message)


class LegacyError(ConfigError):
    """The legacy file cannot be mapped: every problem found, each naming the file, the line and the key."""

    def __init__(self, problems: list[Problem]) -> None:
        problems = sorted(problems, key=lambda p: (p.line, p.key, p.message))
        head = '%d problem(s) in the legacy file %s' % (len(problems), problems[0].path) if problems else 'the legacy file cannot be mapped'
        super().__init__('%s:\n%s' % (head, '\n'.join(str(p) for p in problems)),
                         problems=[dict(p._asdict(), text=str(p)) for p in problems])
        self.problems = problems


class Value(t.NamedTuple):
    """A scalar or an array element: its text (None after a problem already reported) and its line."""

    text: t.Optional[str]
    line: int


class Array:
    """An associative array: where it was declared, where (if) it was assigned as a whole, its elements."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.assigned: t.Optional[int] = None
        self.elements: dict[str, Value] = {}


class Properties(t.NamedTuple):
    """What the file sets, and the problems met while reading it."""

    path: str
    variables: dict[str, str]  # the caller's variables, checked
    scalars: dict[str, Value]
    arrays: dict[str, Array]
    used: dict[str, list[tuple[int, str]]]  # variable -> [(line, key whose value uses it)]
    problems: list[Problem]
    unknown_values: list[Problem]  # those of the problems that only leave a value unknown (an expansion not done)
    unresolved: dict[str, list[str]]  # key -> the variables its value uses and nobody passed


class _Fatal(Exception):
    """The rest of the file cannot be read (an unterminated quote or parenthesis)."""


class _Malformed(Exception):
    """This statement cannot be read; the parser goes on at the next line."""


class _Parser:
    """A reader of the bash subset described in the module docstring. It never runs anything."""

    def __init__(self, text: str, path: str, variables: dict[str, str]) -> None:
        self.text = text
        self.path = path
        self.variables = variables
        self.pos = 0
        self.newlines = [i for i, c in enumerate(text) if c == '\n']
        self.scalars: dict[str, Value] = {}
        self.arrays: dict[str, Array] = {}
        self.used: dict[str, list[tuple[int, str]]] = {}
        self.problems: list[Problem] = []
        self.unknown_values: list[Problem] = []
        self.unresolved: dict[str, list[str]] = {}
        self.key = ''  # the key being read, for the messages

    # -- positions and problems ----------------------------------------------------------------
    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def problem(self, message: str, pos: t.Optional[int] = None, key: t.Optional[str] = None, line: t.Optional[int] = None) -> None:
        if line is None:
            line = self.line_at(self.pos if pos is None else pos)
        self.problems.append(Problem(self.path, line, self.key if key is None else key, message))

    def unknown_value(self, message: str, pos: t.Optional[int] = None) -> None:
        """A problem that only leaves the value of the key being read unknown (an expansion that is not done)."""
        self.problem(message, pos)
        self.unknown_values.append(self.problems[-1])

    def peek(self, offset: int = 0) -> str:
        pos = self.pos + offset
        return self.text[pos] if pos < len(self.text) else ''

    def at_statement_end(self) -> bool:
        return self.peek() in ('', '\n', ';', '#')

    def skip_blanks(self, newlines: bool = False) -> None:
        """Skip spaces, tabs and backslash-newlines; with ``newlines`` also line ends and comments."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in ' \t':
                self.pos += 1
            elif char == '\\' and self.peek(1) == '\n':
                self.pos += 2
            elif newlines and char == '\n':
                self.pos += 1
            elif newlines and char == '#':
                self.skip_line()
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find('\n', self.pos)
        self.pos = len(self.text) if end < 0 else end

    def malformed(self, message: str, pos: t.Optional[int] = None) -> _Malformed:
        self.problem(message, pos)
        return _Malformed(message)

    # -- statements ----------------------------------------------------------------------------
    def result(self) -> Properties:
        return Properties(self.path, self.variables, self.scalars, self.arrays, self.used, self.problems, self.unknown_values, self.unresolved)

    def parse(self) -> Properties:
        if '\x00' in self.text:
            self.problem('the file has a NUL byte: it is not a text file', pos=self.text.index('\x00'), key='')
            return self.result()
        if '\r' in self.text:
            self.problem('the file has CR characters (DOS line ends?); bash keeps them in the values: convert it with dos2unix',
                         pos=self.text.index('\r'), key='')
        try:
            while True:
                self.skip_blanks(newlines=True)
                if self.pos >= len(self.text):
                    break
                self.key = ''
                try:
                    self.statement()
                except _Malformed:
                    self.skip_line()
        except _Fatal:
            pass
        return self.result()

    def rest_of_line(self) -> str:
        return self.text[self.pos:].split('\n', 1)[0].strip()

    def statement(self) -> None:
        match = _NAME.match(self.text, self.pos)
        word = match.group() if match else ''
        after = self.text[match.end():match.end() + 1] if match else ''
        if match and word in ('declare', 'typeset', 'export', 'readonly') and after in ('', ' ', '\t', '\n', ';', '\\'):
            self.pos = match.end()
            self.declaration(word)
        elif word == 'source' or (self.peek() == '.' and self.peek(1) in (' ', '\t')):
            raise self.malformed('%r sources another file, which is not read: pass the variables it defines as common variables' % self.rest_of_line())
        elif not word or after not in ('=', '[', '+'):
            raise self.malformed('not an assignment: %r; the file is read, not run, and may only hold assignments' % self.rest_of_line())
        else:
            self.assignment(declared=None)
        self.end_of_statement()

    def end_of_statement(self) -> None:
        self.skip_blanks()
        if self.peek() == ';':
            self.pos += 1
        elif self.peek() not in ('', '\n', '#'):
            rest = self.rest_of_line()
            raise self.malformed('unexpected %r after the value: an unquoted blank ends a value and bash would run %r as a command; quote the value'
                                 % (rest, rest.split()[0]))

    def declaration(self, command: str) -> None:
        flags: set[str] = set()
        self.skip_blanks()
        while self.peek() == '-':
            start = self.pos
            match = _OPTION.match(self.text, self.pos)
            if not match:
                raise self.malformed('%s: unexpected %r' % (command, self.text[start:start + 10]))
            flags.update(match.group()[1:])
            self.pos = match.end()
            self.skip_blanks()
        if command in ('export', 'readonly') and flags:
            raise self.malformed('%s -%s is not supported' % (command, ''.join(sorted(flags))))
        if 'a' in flags:
            raise self.malformed('%s -a (an indexed array) is not supported; the legacy arrays are associative (declare -A)' % command)
        if flags - _DECLARE_FLAGS:
            raise self.malformed('%s -%s is not supported (only -A, -r, -x, -g)' % (command, ''.join(sorted(flags - _DECLARE_FLAGS))))
        if self.at_statement_end():
            raise self.malformed('%s without a name' % command)
        while not self.at_statement_end():
            self.assignment(declared='A' in flags)
            self.skip_blanks()

    def assignment(self, declared: t.Optional[bool]) -> None:
        """``NAME=value``, ``NAME=( ... )``, ``NAME[key]=value``; after declare/export also a bare ``NAME``.
        ``declared`` is None outside a declaration, else whether it declares an associative array."""
        start = self.pos
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise self.malformed('expected NAME=value, got %r' % self.text[self.pos:].split('\n', 1)[0])
        name = self.key = match.group()
        line = self.line_at(start)
        self.pos = match.end()
        char = self.peek()
        if declared is not None and (char in ('', ' ', '\t', '\n', ';', '#') or (char == '\\' and self.peek(1) == '\n')):
            if declared:
                self.declare(name, line)
            return  # ``export NAME``: no value here
        if char == '+' and self.peek(1) == '=':
            raise self.malformed('appending (%s+=) is not supported; assign the whole value once' % name)
        if char == '[':
            if declared is not None:
                raise self.malformed('declare %s[...]=... is not supported: declare -A %s, then %s[...]=... on its own' % (name, name, name))
            self.pos += 1
            key = self.word(stop=']')
            if self.peek() != ']':
                raise self.malformed('expected ] after the key of %s[' % name)
            if self.text.startswith(']+=', self.pos):
                raise self.malformed('appending (%s[...]+=) is not supported' % name)
            if self.peek(1) != '=':
                raise self.malformed('expected ]= after %s[%s' % (name, key))
            self.pos += 2
            self.key = '%s[%s]' % (name, key)
            value = self.word()
            self.element(name, key, Value(value, line))
            return
        if char != '=':
            raise self.malformed('expected NAME=value, got %r' % self.text[start:].split('\n', 1)[0])
        self.pos += 1
        if self.peek() == '(':
            if declared is False:
                raise self.malformed('%s=( ... ) needs declare -A (bash would make an indexed array)' % name)
            if declared:
                self.declare(name, line)
            self.compound(name, line)
            return
        if declared:
            raise self.malformed('declare -A %s=value: bash would set the element [0]; write %s=( [key]=value ... )' % (name, name))
        value = self.word()
        self.scalar(name, Value(value, line))

    def compound(self, name: str, line: int) -> None:
        """``( [key]=value ... )`` after ``NAME=``, over any number of lines."""
        opened = self.pos
        self.pos += 1
        array = self.arrays.get(name)
        if array is None:
            self.problem('%s=( ... ) needs declare -A %s before it (bash would make an indexed array and read the keys as numbers)'
                         % (name, name), line=line, key=name)
            array = self.arrays[name] = Array(line)
        elif array.assigned is not None or array.elements:
            first = array.assigned or min(v.line for v in array.elements.values())
            self.problem('%s is assigned twice (lines %d and %d)' % (name, first, line), line=line, key=name)
            array.elements = {}
        array.assigned = line
        before = len(self.problems)
        while True:
            self.skip_blanks(newlines=True)
            char = self.peek()
            if char == '':
                del self.problems[before:]  # the lines after the ( were read as elements: only this is the problem
                self.problem('unterminated ( of %s=( opened here' % name, pos=opened, key=name)
                raise _Fatal()
            if char == ')':
                self.pos += 1
                return
            self.key = name
            try:
                self.compound_element(name)
            except _Malformed:
                self.skip_line()

    def compound_element(self, name: str) -> None:
        start = self.pos
        line = self.line_at(start)
        if self.peek() != '[':
            self.word(stop=')')
            self.pos = max(self.pos, start + 1)
            self.problem('%s=( ... ): an element without [key]=, got %r' % (name, self.text[start:self.pos]), pos=start)
            return
        self.pos += 1
        key = self.word(stop=']')
        if self.peek() != ']' or self.peek(1) != '=':
            self.word(stop=')')
            self.pos = max(self.pos, start + 1)
            self.problem('%s=( ... ): expected [key]=value, got %r' % (name, self.text[start:self.pos]), pos=start)
            return
        self.pos += 2
        self.key = '%s[%s]' % (name, key)
        value = self.word(stop=')')
        self.element(name, key, Value(value, line))

    # -- storing ------------------------------------------------------------------------------
    def declare(self, name: str, line: int) -> None:
        if name in self.scalars:
            self.problem('%s is declared an array here but was assigned a value on line %d' % (name, self.scalars[name].line), line=line, key=name)
        elif name in self.arrays:
            self.problem('declare -A %s twice (lines %d and %d)' % (name, self.arrays[name].line, line), line=line, key=name)
            return
        self.arrays[name] = Array(line)

    def scalar(self, name: str, value: Value) -> None:
        if name in self.arrays:
            self.problem('%s is an array (declare -A on line %d); it cannot also be assigned a value' % (name, self.arrays[name].line),
                         line=value.line, key=name)
        elif name in self.scalars:
            self.problem('%s is assigned twice (lines %d and %d)' % (name, self.scalars[name].line, value.line), line=value.line, key=name)
        else:
            self.scalars[name] = value

    def element(self, name: str, key: t.Optional[str], value: Value) -> None:
        label = '%s[%s]' % (name, key)
        array = self.arrays.get(name)
        if array is None:
            if name in self.scalars:
                self.problem('%s was assigned a value on line %d; it is not an array' % (name, self.scalars[name].line),
                             line=value.line, key=label)
                return
            self.problem('%s[key]=value needs declare -A %s before it (bash would make an indexed array and read the key as a number)'
                         % (name, name), line=value.line, key=label)
            array = self.arrays[name] = Array(value.line)
        if key is None:
            return  # its problem is reported
        if key == '':
            self.problem('empty key []', line=value.line, key=label)
        elif key in array.elements:
            self.problem('key %s twice in %s (lines %d and %d)' % (key, name, array.elements[key].line, value.line), line=value.line, key=label)
        else:
            array.elements[key] = value

    # -- words ---------------------------------------------------------------------------------
    def word(self, stop: str = '') -> t.Optional[str]:
        """One word up to an unquoted blank, line end or ``;`` (or ``stop``); None when it had a problem."""
        text = self.text
        parts: list[str] = []
        good = True
        start = self.pos
        while self.pos < len(text):
            char = text[self.pos]
            if stop == ']':
                if char == ']':
                    break
                if char == '\n':
                    raise self.malformed('a newline inside [...]')
            elif char in _WORD_END or char == stop:
                break
            if char == '\\':
                if self.pos + 1 >= len(text):
                    parts.append(char)
                    self.pos += 1
                elif text[self.pos + 1] == '\n':
                    self.pos += 2
                else:
                    parts.append(text[self.pos + 1])
                    self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.problem("unterminated ' (single quote) opened here")
                    raise _Fatal()
                parts.append(text[self.pos + 1:end])
                self.pos = end + 1
            elif char == '"':
                good = self.double_quoted(parts) and good
            elif char == '$':
                good = self.dollar(parts, quoted=False) and good
            elif char == '`':
                self.backticks()
                good = False
            elif char in _OPERATORS or char == ')':
                raise self.malformed('unexpected %r: the file is read, not run, and only holds assignments' % char)
            elif char == '~' and not stop and (self.pos == start or text[self.pos - 1] == ':'):
                self.unknown_value('an unquoted ~ is expanded by bash to a home directory; write the path out or quote it')
                parts.append(char)
                good = False
                self.pos += 1
            else:
                parts.append(char)
                self.pos += 1
        if not good:
            return None
        value = ''.join(parts)
        return self.settle_dbname(value, start) if _DBNAME in value else value

    def settle_dbname(self, value: str, pos: int) -> t.Optional[str]:
        """``$dbname`` in a KEEP_DBNAME_TABLE value: kept as ``$dbname`` before a ``.``, else resolved."""
        pieces = value.split(_DBNAME)
        out = [pieces[0]]
        for piece in pieces[1:]:
            if piece.startswith('.'):
                out.append('$dbname')
            elif not self.resolve('dbname', out, pos, keep=False):
                return None
            out.append(piece)
        return ''.join(out)

    def double_quoted(self, parts: list[str]) -> bool:
        text = self.text
        opened = self.pos
        self.pos += 1
        good = True
        while True:
            if self.pos >= len(text):
                self.problem('unterminated " (double quote) opened here', pos=opened)
                raise _Fatal()
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return good
            if char == '\\' and self.peek(1) in ('$', '`', '"', '\\', '\n'):
                if self.peek(1) != '\n':
                    parts.append(self.peek(1))
                self.pos += 2
            elif char == '$':
                good = self.dollar(parts, quoted=True) and good
            elif char == '`':
                self.backticks()
                good = False
            else:
                parts.append(char)
                self.pos += 1

    def dollar(self, parts: list[str], quoted: bool) -> bool:
        """An expansion at ``$``: a variable is resolved; anything else is a problem (never run)."""
        text = self.text
        start = self.pos
        following = self.peek(1)
        if following == '(':
            depth = 0
            for end in range(self.pos + 1, len(text)):
                depth += {'(': 1, ')': -1}.get(text[end], 0)
                if depth == 0:
                    break
            else:
                self.problem('unterminated $( opened here')
                raise _Fatal()
            kind = 'arithmetic expansion' if text.startswith('$((', start) else 'command substitution'
            self.unknown_value('%s %s is not run: the file is read, not executed; write the value out or pass it as a common variable'
                               % (kind, text[start:end + 1]))
            self.pos = end + 1
            return False
        if following == '{':
            end = text.find('}', self.pos + 2)
            if end < 0:
                self.problem('unterminated ${ opened here')
                raise _Fatal()
            inner = text[self.pos + 2:end]
            self.pos = end + 1
            if not _NAME.fullmatch(inner):
                self.unknown_value('${%s} is not supported: only $name and ${name} are resolved' % inner, pos=start)
                return False
            return self.resolve(inner, parts, start)
        match = _NAME.match(text, self.pos + 1)
        if match:
            self.pos = match.end()
            return self.resolve(match.group(), parts, start)
        if following and following in _SPECIAL_PARAMETERS:
            self.unknown_value('$%s (a special parameter) is not supported: only $name and ${name} are resolved' % following)
            self.pos += 2
            return False
        if not quoted and following in ("'", '"'):
            self.problem('$%s...%s quoting is not supported; use plain quotes' % (following, following))
            self.pos += 1
            return False
        parts.append('$')  # a lone $ is kept, as bash does
        self.pos += 1
        return True

    def backticks(self) -> None:
        end = self.text.find('`', self.pos + 1)
        if end < 0:
            self.problem('unterminated ` (backtick) opened here')
            raise _Fatal()
        self.unknown_value('command substitution %s is not run: the file is read, not executed; write the value out or pass it as a common variable'
                           % self.text[self.pos:end + 1])
        self.pos = end + 1

    def resolve(self, name: str, parts: list[str], pos: int, keep: bool = True) -> bool:
        line = self.line_at(pos)
        if keep and name == 'dbname' and self.key in KEEP_DBNAME_TABLE:
            parts.append(_DBNAME)  # settled once the whole value is read: kept before a ".", else resolved
            return True
        if name in self.scalars:
            self.used.setdefault(name, []).append((line, self.key))
            value = self.scalars[name].text
            if value is None:
                return False  # its problem is reported where it was assigned
            parts.append(value)
            return True
        if name in self.arrays:
            self.problem('$%s is the array declared on line %d; only plain variables can be used in values' % (name, self.arrays[name].line), pos=pos)
            return False
        if name in self.variables:
            self.used.setdefault(name, []).append((line, self.key))
            parts.append(self.variables[name])
            return True
        self.unresolved.setdefault(self.key, []).append(name)
        given = ', '.join(sorted(self.variables)) or 'none'
        self.unknown_value('unresolved variable $%s: it is neither assigned earlier in the file nor passed as a common variable (given: %s)'
                           % (name, given), pos=pos)
        return False


def _check_variables(path: str, variables: t.Optional[t.Mapping]) -> tuple[dict[str, str], list[Problem]]:
    checked: dict[str, str] = {}
    problems = []
    for name, value in (variables or {}).items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(Problem(path, 0, 'common variables', 'the name %r is not a bash variable name' % (name,)))
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append(Problem(path, 0, 'common variables', '%s must be a string, got %r' % (name, value)))
        else:
            checked[name] = str(value)
    return checked, problems


def parse(text: str, path: str, variables: t.Optional[t.Mapping] = None) -> Properties:
    """Read the file's assignments; problems are collected in the result, nothing is raised."""
    checked, problems = _check_variables(path, variables)
    properties = _Parser(text, path, checked).parse()
    properties.problems[:0] = problems
    return properties
