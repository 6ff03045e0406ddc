//! CSV as Google's export writes it (RFC 4180: `,`, `"` quoting with `""` inside, CRLF or
//! LF line ends, line breaks inside quoted fields), for public sheets and for the `data` of
//! a write.

/// The records of `text`; a trailing line end does not start a record.
pub(crate) fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    // Whether anything of the current record was read (so a blank last line adds nothing).
    let mut started = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                started = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                started = false;
                line += 1;
            }
            _ => {
                field.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err(format!(
            "a quoted field opened by line {line} is never closed"
        ));
    }
    if started {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn quoted_fields_and_line_ends() {
        let rows = parse("a,b\r\n\"x, \"\"y\"\"\",\"two\nlines\"\n,\n").expect("csv");
        assert_eq!(
            rows,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["x, \"y\"".to_owned(), "two\nlines".to_owned()],
                vec![String::new(), String::new()],
            ]
        );
        assert_eq!(parse("").expect("empty"), Vec::<Vec<String>>::new());
        assert_eq!(parse("x").expect("no line end"), vec![vec!["x".to_owned()]]);
        assert!(parse("\"open").is_err());
    }
}
