//! The Sheets API v4, as a service account calls it: `spreadsheets.get` (worksheets, cell
//! formats), `spreadsheets.values.get`, `.update`, `.clear` and `spreadsheets.batchUpdate`
//! (`addSheet`). Google's errors become one line naming the spreadsheet and the account, of
//! the kind the host acts on: `auth` (401, 403), `query` (400, 404), retryable (429, 5xx).

use plugboard_api::PluginError;
use serde_json::Value as Json;

use crate::auth::ServiceAccount;
use crate::grid::{Cell, Grid, Worksheet};
use crate::http::{Http, Reply, escape, one_line, query};

/// A spreadsheet as the section or a call names it: its id, and the `gid` its URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpreadsheetRef {
    pub id: String,
    pub gid: Option<i64>,
}

impl SpreadsheetRef {
    /// From a URL (`https://docs.google.com/spreadsheets/d/<id>/edit#gid=0`) or a bare id.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let id_like = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if let Some(at) = text.find("/d/") {
            let rest = &text[at + 3..];
            let id = rest.split(['/', '?', '#']).next().unwrap_or("");
            if !id_like(id) {
                return Err(format!("no spreadsheet id after /d/ in {text:?}"));
            }
            let gid = rest
                .split(['#', '?', '&'])
                .find_map(|part| part.strip_prefix("gid="))
                .and_then(|g| {
                    let digits: String = g.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                });
            return Ok(Self {
                id: id.to_owned(),
                gid,
            });
        }
        if id_like(text) {
            return Ok(Self {
                id: text.to_owned(),
                gid: None,
            });
        }
        Err(format!(
            "{text:?} is neither a spreadsheet URL (https://docs.google.com/spreadsheets/d/<id>/…) \
             nor a spreadsheet id (opening a spreadsheet by its title is not supported)"
        ))
    }
}

/// One worksheet of a spreadsheet.
#[derive(Debug, Clone)]
pub(crate) struct SheetInfo {
    pub gid: i64,
    pub title: String,
}

/// The API, for one service account.
pub(crate) struct Api {
    base: String,
    account: ServiceAccount,
}

impl Api {
    pub fn new(base: String, account: ServiceAccount) -> Self {
        Self { base, account }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn email(&self) -> &str {
        &self.account.email
    }

    fn url(&self, id: &str, tail: &str) -> String {
        format!("{}/v4/spreadsheets/{}{tail}", self.base, escape(id))
    }

    /// Sends with a token; a 401 drops the token and tries once more with a new one.
    fn call(
        &self,
        http: &Http,
        id: &str,
        send: impl Fn(&str) -> Result<Reply, PluginError>,
    ) -> Result<Json, PluginError> {
        // A refused assertion names the account; say which spreadsheet it was for too.
        let token = |http: &Http| {
            self.account.token(http).map_err(|e| PluginError {
                message: format!("spreadsheet {id}: {}", e.message()).into(),
                ..e
            })
        };
        let mut bearer = token(http)?;
        let mut reply = send(&bearer)?;
        if reply.status == 401 {
            self.account.forget(&bearer);
            bearer = token(http)?;
            reply = send(&bearer)?;
        }
        if !reply.ok() {
            return Err(self.error(id, &reply));
        }
        serde_json::from_str(&reply.body).map_err(|e| {
            PluginError::internal(format!(
                "spreadsheet {id}: the Sheets API's answer is not JSON ({e})"
            ))
        })
    }

    /// Google's error (`{"error": {"code", "message", "status"}}`) as one line.
    fn error(&self, id: &str, reply: &Reply) -> PluginError {
        let json: Json = serde_json::from_str(&reply.body).unwrap_or_default();
        let status = json["error"]["status"].as_str().unwrap_or("");
        let message = one_line(json["error"]["message"].as_str().unwrap_or(""));
        let said = match (status, message.as_str()) {
            ("", "") => format!("HTTP {}", reply.status),
            ("", m) => format!("HTTP {}: {m}", reply.status),
            (s, "") => format!("HTTP {} {s}", reply.status),
            (s, m) => format!("HTTP {} {s}: {m}", reply.status),
        };
        let email = self.email();
        match reply.status {
            401 => PluginError::auth(format!(
                "the Sheets API refused the access token of service account {email} for \
                 spreadsheet {id} ({said})"
            )),
            403 => PluginError::auth(format!(
                "service account {email} may not open spreadsheet {id} ({said}); share the \
                 spreadsheet with {email}"
            )),
            404 => PluginError::query(format!(
                "spreadsheet {id} was not found by service account {email} ({said})"
            )),
            429 => PluginError::connect(format!(
                "the Sheets API's quota is used up for spreadsheet {id} (service account \
                 {email}): {said}"
            ))
            .retryable(),
            500.. => PluginError::connect(format!(
                "the Sheets API failed for spreadsheet {id} (service account {email}): {said}"
            ))
            .retryable(),
            _ => PluginError::query(format!(
                "spreadsheet {id} (service account {email}): {said}"
            )),
        }
    }

    /// The spreadsheet's worksheets, in their order.
    pub fn sheets(&self, http: &Http, id: &str) -> Result<Vec<SheetInfo>, PluginError> {
        let url = self.url(
            id,
            &query(&[("fields", "sheets.properties(sheetId,title,index)")]),
        );
        let json = self.call(http, id, |t| http.get(&url, Some(t)))?;
        Ok(json["sheets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| SheetInfo {
                gid: s["properties"]["sheetId"].as_i64().unwrap_or(0),
                title: s["properties"]["title"].as_str().unwrap_or("").to_owned(),
            })
            .collect())
    }

    /// The worksheet `asked` stands for: the one titled so, else (for a number) the one
    /// with that gid; the first for none.
    pub fn resolve(
        &self,
        http: &Http,
        id: &str,
        asked: Option<&Worksheet>,
    ) -> Result<SheetInfo, PluginError> {
        let sheets = self.sheets(http, id)?;
        let found = match asked {
            None => sheets.first(),
            Some(Worksheet::Name(name)) => sheets.iter().find(|s| &s.title == name).or_else(|| {
                name.parse::<i64>()
                    .ok()
                    .and_then(|gid| sheets.iter().find(|s| s.gid == gid))
            }),
            Some(Worksheet::Gid(gid)) => sheets.iter().find(|s| s.gid == *gid),
        };
        found.cloned().ok_or_else(|| {
            let listed: Vec<String> = sheets
                .iter()
                .map(|s| format!("{:?} (gid {})", s.title, s.gid))
                .collect();
            let what = match asked {
                None => "no worksheet".to_owned(),
                Some(w) => format!("no worksheet {w}"),
            };
            let sql = matches!(asked, Some(Worksheet::Name(n))
                if n.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("select")));
            let hint = if sql {
                "; a read's target is a worksheet, not SQL"
            } else {
                ""
            };
            PluginError::query(format!(
                "{what} in spreadsheet {id} (its worksheets: {}){hint}",
                listed.join(", ")
            ))
        })
    }

    /// A worksheet's values, unformatted, and the dates among them typed by their cells'
    /// number formats.
    pub fn read(
        &self,
        http: &Http,
        id: &str,
        worksheet: Option<&Worksheet>,
        range: Option<&str>,
        evaluate_formulas: bool,
    ) -> Result<Grid, PluginError> {
        let sheet = self.resolve(http, id, worksheet)?;
        let a1 = a1(&sheet.title, range);
        let render = if evaluate_formulas {
            "UNFORMATTED_VALUE"
        } else {
            "FORMULA"
        };
        let url = self.url(
            id,
            &format!(
                "/values/{}{}",
                escape(&a1),
                query(&[
                    ("majorDimension", "ROWS"),
                    ("valueRenderOption", render),
                    ("dateTimeRenderOption", "SERIAL_NUMBER"),
                ])
            ),
        );
        let json = self.call(http, id, |t| http.get(&url, Some(t)))?;
        let mut rows: Vec<Vec<Cell>> = json["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|row| {
                row.as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(Cell::from_api)
                    .collect()
            })
            .collect();
        let numbers = rows.iter().flatten().any(|c| matches!(c, Cell::Number(_)));
        if numbers {
            // Dates are numbers (days since 1899-12-30) that the cell's format says are dates.
            let url = self.url(
                id,
                &query(&[
                    ("ranges", &a1),
                    (
                        "fields",
                        "sheets.data.rowData.values.effectiveFormat.numberFormat.type",
                    ),
                ]),
            );
            let json = self.call(http, id, |t| http.get(&url, Some(t)))?;
            let data = &json["sheets"][0]["data"][0]["rowData"];
            for (r, row) in rows.iter_mut().enumerate() {
                for (c, cell) in row.iter_mut().enumerate() {
                    let kind = data[r]["values"][c]["effectiveFormat"]["numberFormat"]["type"]
                        .as_str()
                        .unwrap_or("");
                    cell.apply_format(kind);
                }
            }
        }
        Ok(Grid { rows, raw: None })
    }

    /// `values.update` of `rows` at the worksheet's A1; returns the rows written.
    pub fn update(
        &self,
        http: &Http,
        id: &str,
        title: &str,
        rows: &[Vec<Json>],
        input: &str,
    ) -> Result<u64, PluginError> {
        let a1 = a1(title, Some("A1"));
        let url = self.url(
            id,
            &format!(
                "/values/{}{}",
                escape(&a1),
                query(&[("valueInputOption", input)])
            ),
        );
        let body = serde_json::json!({"range": a1, "majorDimension": "ROWS", "values": rows});
        let json = self.call(http, id, |t| http.send_json("PUT", &url, t, &body))?;
        Ok(json["updatedRows"].as_u64().unwrap_or(rows.len() as u64))
    }

    /// `values.clear` of a whole worksheet.
    pub fn clear(&self, http: &Http, id: &str, title: &str) -> Result<(), PluginError> {
        let url = self.url(id, &format!("/values/{}:clear", escape(&a1(title, None))));
        let body = serde_json::json!({});
        self.call(http, id, |t| http.send_json("POST", &url, t, &body))?;
        Ok(())
    }

    /// `batchUpdate` with one `addSheet`, its grid large enough for `rows` × `cols`.
    pub fn add_sheet(
        &self,
        http: &Http,
        id: &str,
        title: &str,
        rows: usize,
        cols: usize,
    ) -> Result<(), PluginError> {
        let url = self.url(id, ":batchUpdate");
        let body = serde_json::json!({"requests": [{"addSheet": {"properties": {
            "title": title,
            "gridProperties": {"rowCount": rows.max(1000), "columnCount": cols.max(26)},
        }}}]});
        self.call(http, id, |t| http.send_json("POST", &url, t, &body))?;
        Ok(())
    }
}

/// A1 notation for a worksheet (its title quoted, `'` doubled) and an optional range in it.
pub(crate) fn a1(title: &str, range: Option<&str>) -> String {
    let quoted = format!("'{}'", title.replace('\'', "''"));
    match range {
        Some(r) => format!("{quoted}!{r}"),
        None => quoted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheets_are_named_by_url_or_id() {
        let url = SpreadsheetRef::parse(
            "https://docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit#gid=123",
        )
        .expect("url");
        assert_eq!(url.id, "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms");
        assert_eq!(url.gid, Some(123));
        let q = SpreadsheetRef::parse("https://docs.google.com/spreadsheets/d/abc/edit?gid=7")
            .expect("query gid");
        assert_eq!((q.id.as_str(), q.gid), ("abc", Some(7)));
        let bare = SpreadsheetRef::parse("abc_D-9").expect("id");
        assert_eq!((bare.id.as_str(), bare.gid), ("abc_D-9", None));
        assert!(SpreadsheetRef::parse("My budget").is_err());
        assert!(SpreadsheetRef::parse("https://docs.google.com/spreadsheets/d//edit").is_err());
    }

    #[test]
    fn a1_quotes_titles() {
        assert_eq!(a1("Sheet1", None), "'Sheet1'");
        assert_eq!(a1("Bob's data", Some("A1:B2")), "'Bob''s data'!A1:B2");
    }
}
