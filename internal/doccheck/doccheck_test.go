package doccheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's top directory.
func root(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root not found")
		}
		dir = parent
	}
}

type block struct {
	file, lang string
	line       int
	lines      []string
}

func docs(t *testing.T, top string) []string {
	files := []string{filepath.Join(top, "README.md")}
	more, err := filepath.Glob(filepath.Join(top, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

func blocks(t *testing.T, path string) []block {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if cur == nil {
				cur = &block{file: path, lang: strings.TrimPrefix(line, "```"), line: n}
			} else {
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
		}
	}
	if cur != nil {
		t.Errorf("%s:%d: unclosed code block", path, cur.line)
	}
	return out
}

// sources returns the trimmed lines of every file under top with one of exts.
func sources(t *testing.T, top string, exts ...string) map[string][]string {
	out := map[string][]string{}
	err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		for _, ext := range exts {
			if !d.IsDir() && strings.HasSuffix(path, ext) {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				var lines []string
				for _, l := range strings.Split(string(b), "\n") {
					lines = append(lines, strings.TrimSpace(l))
				}
				out[path] = lines
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func significant(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// foundIn reports whether want appears in src as consecutive lines, where
// the source may have blank and comment lines in between (a doc may leave
// doc comments out).
func foundIn(want, src []string) bool {
	for start := range src {
		i, j := 0, start
		for i < len(want) && j < len(src) {
			switch {
			case src[j] == want[i]:
				i++
				j++
			case i > 0 && (src[j] == "" || strings.HasPrefix(src[j], "//") || strings.HasPrefix(src[j], "#")):
				j++
			default:
				j = len(src) // mismatch
			}
		}
		if i == len(want) {
			return true
		}
	}
	return false
}

func foundAnywhere(want []string, srcs map[string][]string) bool {
	for _, src := range srcs {
		if foundIn(want, src) {
			return true
		}
	}
	return false
}

var (
	pathToken = regexp.MustCompile(`(?:^|\s)(\./[A-Za-z0-9_./-]+)`)
	goChdir   = regexp.MustCompile(`\bgo -C ([A-Za-z0-9_./-]+)`)
)

func TestDocBlocks(t *testing.T) {
	top := root(t)
	goSrc := sources(t, top, ".go")
	yamlSrc := sources(t, top, ".yaml", ".yml")
	for _, doc := range docs(t, top) {
		rel, _ := filepath.Rel(top, doc)
		for _, b := range blocks(t, doc) {
			want := significant(b.lines)
			switch b.lang {
			case "go":
				if !foundAnywhere(want, goSrc) {
					t.Errorf("%s:%d: this Go block is not in any .go file of the repository (so nothing compiles it):\n%s", rel, b.line, strings.Join(b.lines, "\n"))
				}
			case "yaml":
				if !foundAnywhere(want, yamlSrc) {
					t.Errorf("%s:%d: this YAML block is not in any shipped YAML file", rel, b.line)
				}
			case "sh":
				for _, l := range want {
					dir := top
					if m := goChdir.FindStringSubmatch(l); m != nil { // go -C dir ...
						dir = filepath.Join(top, m[1])
					}
					for _, m := range pathToken.FindAllStringSubmatch(l, -1) {
						if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
							t.Errorf("%s:%d: %s names %s, which does not exist", rel, b.line, l, m[1])
						}
					}
				}
			case "":
				// Output or a one-line command; nothing to compile.
			default:
				t.Errorf("%s:%d: code block in %q: use go, sh, yaml or none", rel, b.line, b.lang)
			}
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)#]+)(#[^)]*)?\)`)

func TestDocLinks(t *testing.T) {
	top := root(t)
	for _, doc := range docs(t, top) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(top, doc)
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s: link to %s: %v", rel, target, err)
			}
		}
		// Paths the prose names in backquotes, e.g. `examples/offline`.
		for _, m := range regexp.MustCompile("`((?:examples|docs|store|reporters|nexusotel|internal|e2e|deploy)/[A-Za-z0-9_./-]*)`").FindAllStringSubmatch(string(b), -1) {
			if _, err := os.Stat(filepath.Join(top, m[1])); err != nil {
				t.Errorf("%s: names %s, which does not exist", rel, m[1])
			}
		}
	}
}
