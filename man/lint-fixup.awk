# Tidy scdoc's roff so that `mandoc -T lint` has nothing to say: scdoc
# (1.11, Debian 12) puts a .P before and after every heading and at the end
# of the page, writes a lower-case title, blank lines, and joins a
# paragraph's source lines into text lines of any length, and ends
# indented blocks with .P before .RE.  Only layout
# changes here, never words: the page reads the same.
#   awk -f lint-fixup.awk PAGE.roff > PAGE.fixed
function heading(l) { return l ~ /^\.(SH|SS|TH)( |$)/ }
function flush_p(next_line) {
    if (pending && !heading(next_line) && next_line !~ /^\.(P|PP|IP)( |$)/ && !heading(last))
        emit(".P")
    pending = 0
}
function emit(l) { print l; last = l }
# Break a filled text line longer than 80 bytes at spaces; a piece that
# would start like a request is escaped with \&.
function wrap(l,    out, cut) {
    while (length(l) > 80) {
        cut = 0
        for (i = 80; i > 1; i--) if (substr(l, i, 1) == " ") { cut = i; break }
        if (!cut) break
        emit(substr(l, 1, cut - 1))
        l = substr(l, cut + 1)
        if (l ~ /^[.']/) l = "\\&" l
    }
    emit(l)
}
{
    line = $0
    if (line ~ /^\.nf/) nofill = 1
    if (line ~ /^\.fi/) nofill = 0
    if (line ~ /^\.TH /) {
        # Upper-case the title, as man(7) pages have it.
        match(line, /^\.TH "[^"]*"/)
        line = toupper(substr(line, 1, RLENGTH)) substr(line, RLENGTH + 1)
        sub(/^\.TH/, ".TH", line)
    }
    if (line ~ /^\.(P|PP)$/) { flush_p(line); pending = 1; next }
    if (line == "" && !nofill) next
    # ".P" then ".RE": the paragraph break belongs after the indent ends.
    if (pending && line ~ /^\.RE( |$)/) { emit(line); next }
    flush_p(line)
    if (!nofill && line !~ /^[.']/) wrap(line)
    else emit(line)
}
END { pending = 0 }
