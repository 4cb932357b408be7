//! Where each pane goes. Shared by the views and by `update` (mouse hits, page sizes), so
//! a click lands on the row that is drawn there.

use ratatui::layout::{Constraint, Layout, Rect};

/// Room for the seed's eleven rows at least (a session not yet described keeps the same
/// layout), a header row and two borders.
const TABLE_MIN_ROWS: usize = 11;

/// The table's height for `rows` systems: every system on screen when the terminal has room;
/// else it scrolls with the selection.
pub(crate) fn table_height(rows: usize) -> u16 {
    u16::try_from(rows.max(TABLE_MIN_ROWS))
        .unwrap_or(u16::MAX)
        .saturating_add(3)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardAreas {
    pub header: Rect,
    pub table: Rect,
    pub gameplay: Rect,
    pub log: Rect,
    pub footer: Rect,
}

/// The dashboard's panes for a session of `systems` systems.
pub fn dashboard(area: Rect, systems: usize) -> DashboardAreas {
    let [header, table, bottom, footer] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_height(systems)),
        Constraint::Min(0),
        Constraint::Length(1),
    ]));
    let [gameplay, log] = bottom.layout(&Layout::horizontal([
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ]));
    DashboardAreas {
        header,
        table,
        gameplay,
        log,
        footer,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownAreas {
    pub header: Rect,
    pub gauge: Rect,
    /// The account, where the connections table was.
    pub account: Rect,
    /// The log while closing, then the final statistics.
    pub side: Rect,
    pub footer: Rect,
}

/// Narrowest the account can be and still show name, outcome and time.
const ACCOUNT_MIN_WIDTH: u16 = 44;

pub fn shutdown(area: Rect) -> ShutdownAreas {
    let [header, gauge, body, footer] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ]));
    let [account, side] = body.layout(&Layout::horizontal([
        Constraint::Min(ACCOUNT_MIN_WIDTH.min(body.width)),
        Constraint::Percentage(45),
    ]));
    ShutdownAreas {
        header,
        gauge,
        account,
        side,
        footer,
    }
}

/// Table rows that fit in `table` (inside borders, below the header row).
pub(crate) fn table_rows_visible(table: Rect) -> usize {
    table.height.saturating_sub(3) as usize
}

/// The first row shown, so that the selected one is visible.
pub(crate) fn table_offset(selected: usize, visible: usize) -> usize {
    if visible == 0 {
        0
    } else {
        selected.saturating_sub(visible - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fits_all_eleven_rows_at_80x24() {
        let a = dashboard(Rect::new(0, 0, 80, 24), 11);
        assert_eq!(table_rows_visible(a.table), 11);
        assert!(a.gameplay.height >= 6, "{a:?}");
        assert_eq!(a.footer.y, 23);
        // Before the session is described, the same layout.
        assert_eq!(dashboard(Rect::new(0, 0, 80, 24), 0), a);
        // A twelfth system gets its row where the terminal has room.
        let twelve = dashboard(Rect::new(0, 0, 80, 40), 12);
        assert_eq!(table_rows_visible(twelve.table), 12);
    }

    #[test]
    fn the_offset_keeps_the_selection_visible() {
        assert_eq!(table_offset(3, 11), 0);
        assert_eq!(table_offset(10, 5), 6);
        assert_eq!(table_offset(4, 0), 0);
    }
}
