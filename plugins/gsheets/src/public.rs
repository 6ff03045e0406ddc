//! Public sheets ("Anyone with the link can view"): the worksheet's CSV export, with no
//! credentials. A worksheet named by gid (or by text that is a number) is read through
//! `/spreadsheets/d/<id>/export?format=csv&gid=<gid>`; one named by title through the
//! visualization endpoint, `/spreadsheets/d/<id>/gviz/tq?tqx=out:csv&sheet=<title>`,
//! which Google answers with the first worksheet when no worksheet has that title.

use plugboard_api::PluginError;

use crate::grid::{Cell, Grid, Worksheet};
use crate::http::{Http, escape, one_line, query};

/// The export's URL for a worksheet (the first when none is named) and an optional range.
pub(crate) fn url(
    base: &str,
    id: &str,
    worksheet: Option<&Worksheet>,
    range: Option<&str>,
) -> String {
    let id = escape(id);
    let mut pairs: Vec<(&str, String)> = Vec::new();
    // Text that is a number is a gid, as gsheets-connection takes it for public sheets.
    let title = match worksheet {
        Some(Worksheet::Name(t)) if t.parse::<i64>().is_err() => Some(t),
        _ => None,
    };
    let path = match title {
        Some(title) => {
            pairs.push(("tqx", "out:csv".to_owned()));
            pairs.push(("sheet", title.clone()));
            format!("{base}/spreadsheets/d/{id}/gviz/tq")
        }
        None => {
            pairs.push(("format", "csv".to_owned()));
            if let Some(gid) = worksheet.and_then(Worksheet::gid) {
                pairs.push(("gid", gid.to_string()));
            }
            format!("{base}/spreadsheets/d/{id}/export")
        }
    };
    if let Some(r) = range {
        pairs.push(("range", r.to_owned()));
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("{path}{}", query(&pairs))
}

/// Reads a public worksheet.
pub(crate) fn read(
    http: &Http,
    base: &str,
    id: &str,
    worksheet: Option<&Worksheet>,
    range: Option<&str>,
) -> Result<Grid, PluginError> {
    let which = match worksheet {
        Some(w) => format!("worksheet {w} of public spreadsheet {id}"),
        None => format!("public spreadsheet {id}"),
    };
    let reply = http.get(&url(base, id, worksheet, range), None)?;
    // A sheet that is not shared publicly answers with Google's sign-in page.
    let html = reply.content_type.starts_with("text/html");
    match reply.status {
        200..=299 if !html => {}
        200..=299 | 401 | 403 => {
            return Err(PluginError::auth(format!(
                "{which} cannot be read without signing in: share it as \"Anyone with the link\", \
                 or read it with a service account (type = \"service_account\")"
            )));
        }
        404 => {
            return Err(PluginError::query(format!(
                "{which} was not found (HTTP 404)"
            )));
        }
        429 | 500.. => {
            return Err(PluginError::connect(format!(
                "{which}: Google answered HTTP {}",
                reply.status
            ))
            .retryable());
        }
        s => {
            let said = one_line(reply.body.chars().take(200).collect::<String>().as_str());
            return Err(PluginError::query(format!("{which}: HTTP {s}: {said}")));
        }
    }
    let raw = crate::csv::parse(&reply.body)
        .map_err(|e| PluginError::internal(format!("{which}: the CSV export is damaged: {e}")))?;
    let rows = raw
        .iter()
        .map(|r| r.iter().map(|t| Cell::from_text(t)).collect())
        .collect();
    Ok(Grid {
        rows,
        raw: Some(raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worksheets_by_gid_go_to_the_export_and_by_title_to_gviz() {
        let base = "https://docs.google.com";
        assert_eq!(
            url(base, "abc", None, None),
            "https://docs.google.com/spreadsheets/d/abc/export?format=csv"
        );
        assert_eq!(
            url(base, "abc", Some(&Worksheet::Gid(7)), Some("A1:B2")),
            "https://docs.google.com/spreadsheets/d/abc/export?format=csv&gid=7&range=A1%3AB2"
        );
        assert_eq!(
            url(base, "abc", Some(&Worksheet::Name("12".into())), None),
            "https://docs.google.com/spreadsheets/d/abc/export?format=csv&gid=12"
        );
        assert_eq!(
            url(base, "abc", Some(&Worksheet::Name("My Sheet".into())), None),
            "https://docs.google.com/spreadsheets/d/abc/gviz/tq?tqx=out%3Acsv&sheet=My%20Sheet"
        );
    }
}
