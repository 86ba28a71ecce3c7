package fakejira

// Fixtures returns the issues a new Server holds, realistic examples of what
// the bot meets:
//
//   - PAY-1, ready to release: "Ready for Release", assigned to Ann, fix
//     version 2.4.0, components backend and payments, and custom fields of
//     each shape Jira uses: customfield_10010 a string ("QA passed"),
//     customfield_10011 a number (story points, 3), customfield_10012 an
//     option object ({"value": "Low"}), customfield_10013 a multi-select
//     array of options (EU, US) and customfield_10014 present but null.
//   - PAY-2, not ready: "In Progress", unassigned (null), no fix version,
//     component backend, customfield_10010 and customfield_10011 null.
//   - WEB-7, ready, assigned to a Cloud user who hides their e-mail: fix
//     versions 2025.06 and 2025.07, components "Frontend Web" and CDN,
//     customfield_10010 an empty string, customfield_10013 an array of
//     strings and labels.
//   - OPS-3, done: a Data Center style assignee (name and key, no account
//     ID), issue type Bug, no components.
func Fixtures() []Issue {
	return []Issue{
		{
			Key:         "PAY-1",
			Summary:     "Faster checkout",
			Status:      "Ready for Release",
			IssueType:   "Story",
			ProjectName: "Payments",
			Assignee: &User{
				AccountID:    "5b10a2844c20165700ede21g",
				EmailAddress: "ann@example.com",
				DisplayName:  "Ann Example",
			},
			FixVersions: []string{"2.4.0"},
			Components:  []string{"backend", "payments"},
			Fields: map[string]any{
				"customfield_10010": "QA passed",
				"customfield_10011": 3.0,
				"customfield_10012": map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10020", "value": "Low", "id": "10020"},
				"customfield_10013": []any{
					map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10030", "value": "EU", "id": "10030"},
					map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10031", "value": "US", "id": "10031"},
				},
				"customfield_10014": nil,
			},
		},
		{
			Key:         "PAY-2",
			Summary:     "Refund e-mails are sent twice",
			Status:      "In Progress",
			IssueType:   "Bug",
			ProjectName: "Payments",
			Components:  []string{"backend"},
			Fields: map[string]any{
				"customfield_10010": nil,
				"customfield_10011": nil,
			},
		},
		{
			Key:         "WEB-7",
			Summary:     "New landing page",
			Status:      "Ready for Release",
			IssueType:   "Task",
			ProjectName: "Website",
			Assignee: &User{
				AccountID:   "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
				DisplayName: "Bob Builder",
			},
			FixVersions: []string{"2025.06", "2025.07"},
			Components:  []string{"Frontend Web", "CDN"},
			Fields: map[string]any{
				"customfield_10010": "",
				"customfield_10013": []any{"mobile", "desktop"},
				"labels":            []any{"release", "web"},
			},
		},
		{
			Key:            "OPS-3",
			Summary:        "Rotate the TLS certificates",
			Status:         "Done",
			StatusCategory: "done",
			IssueType:      "Bug",
			ProjectName:    "Operations",
			Assignee: &User{
				Name:         "carol",
				Key:          "JIRAUSER10203",
				EmailAddress: "carol@example.com",
				DisplayName:  "Carol Ops",
			},
			FixVersions: []string{"ops-2025-06"},
		},
	}
}
