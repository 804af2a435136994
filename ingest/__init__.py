"""Taking in what provinces already send to the national portal: the DVCQG dossier-sync records
(`DongBoHoSoMC`, `CapNhatTienDoHoSoMC`) and LayThuTuc-shaped catalogue records, translated into
chiso766 events. Pure: no I/O, no clock reads (the arrival time is an argument). Imports only
`schemas` and `contracts`, so the gateway, the importer and the simulator can all use it."""
